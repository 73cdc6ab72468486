"""Engine: wires the hardware components into a SimPy environment and runs a compiled Program."""
