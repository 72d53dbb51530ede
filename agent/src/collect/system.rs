//! System collector (/proc, /sys).
