from pipeline.export.cli import main

raise SystemExit(main())
