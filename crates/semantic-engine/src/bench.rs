//! Engine benchmark (filled in below).
