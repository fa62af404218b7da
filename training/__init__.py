"""Training scripts for the models shipped in the package (guard classifiers) and the data splits they use."""
