from pipeline.index.cli import main

raise SystemExit(main())
