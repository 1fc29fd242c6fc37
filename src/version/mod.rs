//! Version ordering, one type per scheme (dpkg, apk, rpm, SemVer, Go, PEP 440, Maven).
