"""Hexagon DSP support: the delegate's op-eligibility rules and calibration data for int8 quantization."""
