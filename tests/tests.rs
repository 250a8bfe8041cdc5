//! ctrdb's integration tests, in one binary (one link step). Each module's header
//! names the invariant it protects.

mod it;
