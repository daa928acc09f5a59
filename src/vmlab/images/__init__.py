"""Guest and container images built locally from Debian packages (recipes in vm-images/).

build_image("tiny", progress=cb, force=False) -> ImageInfo   # cached, verified, docker-imported
get_image("tiny") -> ImageInfo                               # UsageError if not built
"""

from vmlab.images.cache import build_image, get_image, list_images, remove_image, verify_entry
from vmlab.images.model import ImageInfo, Manifest

__all__ = ["ImageInfo", "Manifest", "build_image", "get_image", "list_images", "remove_image", "verify_entry"]
