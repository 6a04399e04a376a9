"""Federated model training with Flower at the coordinator: the plan of a run, the
ServerApp's rounds (FedAvg/FedProx, early stopping), the links to the sites and the
runtimes the rounds run in (:mod:`coordinator.training.runtimes`)."""
