from mixpe_sim.cli import main

raise SystemExit(main())
