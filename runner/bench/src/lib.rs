//! Nothing: the figures are in `benches/` (`make bench`).
