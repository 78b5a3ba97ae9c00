from pipeline.extract.cli import main

raise SystemExit(main())
