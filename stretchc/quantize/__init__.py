"""Quantization of partitions (the quantize-partitions pass): one calibration of the whole model through TFLite's
own calibrator and quantizer (`calibrate`), the quantized partitions spliced into the IR with one planned
conversion per boundary where dtypes differ (`rewrite`), and the accuracy guard of `--precision auto` (`guard`)."""
