"""The Imaging Document Consumer side of RAD-69 (IHE RAD TF-2 §4.69): ``xdsi retrieve``'s engine.

* :mod:`~xdsi.client.requester` — :class:`~xdsi.client.requester.Requester`: zeep builds the
  request from the WSDL; the response is streamed to disk by our reader.
* :mod:`~xdsi.client.receive` / :mod:`~xdsi.client.mtom` — the streaming, byte-exact MTOM/XOP
  reader (and the MTOM framing used to send).
* :mod:`~xdsi.client.envelope` — faults, RegistryResponse and DocumentResponse from the root part.
* :mod:`~xdsi.client.kos` — document requests from a KOS manifest.
* :mod:`~xdsi.client.result` — the typed results.

Like every client, this package shares only :mod:`xdsi.model` and :mod:`xdsi.ns` with the server
(design notes): it never imports :mod:`xdsi.soap` or :mod:`xdsi.transactions`.
"""
