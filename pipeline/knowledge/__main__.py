from pipeline.knowledge.cli import main

raise SystemExit(main())
