"""What the Flower training app exchanges: the app bundle and its hash, and how train
steps and their results travel inside Flower messages. Flower itself is imported only by
the functions that need it (see :mod:`schemas.training.env`)."""
