//! Extract stage, OS side: the distro identity and the package databases of OS package managers.
//!
//! Each submodule is one extractor with a stable name (`os/release`, `os/dpkg`, `os/apk`, `os/rpm`).
//! They only parse bytes handed to them; the layer walk decides which files to open.

pub mod apk;
pub mod dpkg;
pub mod dpkg_files;
pub mod release;
pub mod rpm;

use crate::model::{Package, PackageType};

/// A package as every OS extractor reports it: `ecosystem` and `layer_digest` are left for the layer
/// merge, which knows the image's os-release and the layer the file came from.
pub(crate) fn os_package(
    extractor: &'static str,
    location: &str,
    name: String,
    version: String,
) -> Package {
    Package {
        name,
        version,
        ecosystem: String::new(),
        package_type: PackageType::Os,
        source_name: None,
        source_version: None,
        arch: None,
        extractor: extractor.to_string(),
        location: location.to_string(),
        layer_digest: None,
    }
}

/// Treats an empty field as absent, so `Some("")` never reaches the output.
pub(crate) fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}
