//! Nothing here: the tests live in `e2e/`; this crate only carries them.
