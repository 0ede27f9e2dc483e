//! The LANDER spool protocol and the batch dispatcher.
