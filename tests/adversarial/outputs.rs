//! (filled in by the outputs work)

#[allow(unused_imports)]
use crate::common;
