//! OCI distribution client: auth challenges, catalog and tag paging, manifests, blobs, retries.
