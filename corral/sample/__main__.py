from corral.sample import main

raise SystemExit(main())
