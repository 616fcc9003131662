"""``BlobStore`` adapters: a directory on this machine, and Amazon S3."""

from adapters.blobs.directory import DirectoryBlobStore
from adapters.blobs.s3 import S3BlobStore

__all__ = ["DirectoryBlobStore", "S3BlobStore"]
