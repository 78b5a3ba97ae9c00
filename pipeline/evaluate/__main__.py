from pipeline.evaluate.cli import main

raise SystemExit(main())
