from agents.bench import main

raise SystemExit(main())
