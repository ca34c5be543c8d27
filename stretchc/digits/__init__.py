"""The trained example: a small branched CNN for scikit-learn's handwritten digits, its data split and training."""
