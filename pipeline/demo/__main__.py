from pipeline.demo.cli import main

raise SystemExit(main())
