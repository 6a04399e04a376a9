"""Secure aggregation shared by node and coordinator (Bonawitz et al., CCS 2017).

``fixedpoint``: reals as integers modulo 2^128; ``prg``: seeds and mask vectors;
``shamir``: t-of-n secret sharing; ``keys``: signed X25519 keys, pairwise keys and the
encrypted share channel; ``wire``: the messages of the protocol.
"""
