//! Writing files safely: the one verified-write protocol every output of ctrdb
//! goes through ([`atomic`]).

pub mod atomic;
