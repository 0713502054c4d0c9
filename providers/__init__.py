"""Storage providers (filesystem, S3, managed SeaweedFS) behind one interface."""
