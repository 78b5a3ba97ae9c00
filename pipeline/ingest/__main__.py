from pipeline.ingest.cli import main

raise SystemExit(main())
