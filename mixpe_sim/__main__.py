from mixpe_sim.cli import console_main

console_main()
