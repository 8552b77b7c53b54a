"""The commands of ``backpropx`` (see backpropx.cli, which parses the options):
train and predict, the data files they read and the model files they write."""
