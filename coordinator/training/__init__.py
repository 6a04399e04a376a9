"""Federated model training with Flower at the coordinator: the plan of a run, the
ServerApp's rounds (FedAvg/FedProx, early stopping), the links to the sites, the
simulation and deployment runtimes, the ``train`` analysis and the model registry."""
