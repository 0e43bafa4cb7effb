"""Images on a node: references and config rules (ref.py, config.py), the content-addressed store
(store.py), and loading archives into it (load.py: manifest.py parses, extract.py unpacks layers).

The launcher reads the store (resolving an image at create, image ls/rm); loading runs in the
client's process or a worker's image pull, never in the launcher.
"""

from shoal.runtime.image.store import Image, ImageStore

__all__ = ["Image", "ImageStore"]
