//! The status page: one [`model::Page`] built from the spool, the monitor's tables and the
//! job histories, rendered as terminal text ([`text`]), HTML with inline SVG charts ([`html`],
//! [`svg`]) and JSON (serde), and served over HTTP ([`serve`]).

pub mod html;
pub mod model;
pub mod serve;
pub mod svg;
pub mod text;

pub use model::{build, Page};
