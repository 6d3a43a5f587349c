from rp_eval.cli import main

raise SystemExit(main())
