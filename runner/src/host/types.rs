//! `tgrun:job/types`: only types, no functions to implement.

use crate::bindings::tgrun::job::types::Host;
use crate::sandbox::state::RunState;

impl Host for RunState {}
