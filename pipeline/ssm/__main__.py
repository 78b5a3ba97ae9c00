from pipeline.ssm.cli import main

raise SystemExit(main())
