//! The screens people look at: the station tablets, the TV order board, device login and
//! activation, and the shift manager's pages. Pages are rendered server-side with askama from
//! the tracker, auth and devices APIs (called with the viewer's own credential); a little
//! vanilla script polls, listens to server-sent events, runs the timers and plays the sounds.

pub mod charts;
pub mod config;
pub mod errors;
pub mod i18n;
pub mod push;
pub mod qr;
pub mod routes;
pub mod screens;
pub mod session;
pub mod startup;
pub mod upstream;
