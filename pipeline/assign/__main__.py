from pipeline.assign.cli import main

raise SystemExit(main())
