"""Lightning access for the forum, independent of Django.

``lightning.client.LightningClient`` talks to lnd (or ``lightning.simnet``) over
gRPC and returns the dataclasses of ``lightning.types``. Nothing in this package
imports Django or reads settings.
"""
