//! Campaign email: the audience (`audience`), publishing a send's jobs (`send`), sending them
//! (`sender`), the delivery ledger (`delivery`), the provider's feedback (`feedback`) and
//! unsubscribing (`unsubscribe`), the counts `status` reads (`tally`), and the items they
//! write.

pub mod audience;
pub mod delivery;
pub mod feedback;
pub mod items;
pub mod send;
pub mod sender;
pub mod tally;
pub mod unsubscribe;
