//! The order's status and the pure rules of every change: which transitions are legal, and
//! which events a change causes. The database code asks these functions and does what they say.

use std::time::Duration;

/// Derived from the products: Accepted until the first tap, InWork while any product is still
/// at a station, Packed when all are done. HandedOver and Cancelled are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Accepted,
    InWork,
    Packed,
    HandedOver,
    Cancelled,
}

/// A change the current status does not allow; `code` is stable for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Conflict {
    pub code: &'static str,
    pub message: &'static str,
}

const CANCELLED: Conflict = Conflict {
    code: "order_cancelled",
    message: "the order is cancelled",
};
const HANDED_OVER: Conflict = Conflict {
    code: "order_handed_over",
    message: "the order has already been handed over",
};

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Accepted,
        OrderStatus::InWork,
        OrderStatus::Packed,
        OrderStatus::HandedOver,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "accepted",
            OrderStatus::InWork => "in_work",
            OrderStatus::Packed => "packed",
            OrderStatus::HandedOver => "handed_over",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The kitchen may still work on the order: tap, undo, remake.
    pub fn ensure_open(self) -> Result<(), Conflict> {
        match self {
            OrderStatus::Cancelled => Err(CANCELLED),
            OrderStatus::HandedOver => Err(HANDED_OVER),
            _ => Ok(()),
        }
    }

    /// The status after a tap, given whether every product is now done.
    pub fn after_tap(self, all_done: bool) -> Result<Transition, Conflict> {
        self.ensure_open()?;
        let to = if all_done {
            OrderStatus::Packed
        } else {
            OrderStatus::InWork
        };
        Ok(Transition::between(self, to))
    }

    /// The status after a product goes back to work (an undone tap or a remake): a packed order
    /// is no longer packed.
    pub fn after_rework(self) -> Result<Transition, Conflict> {
        self.ensure_open()?;
        let to = match self {
            OrderStatus::Packed => OrderStatus::InWork,
            other => other,
        };
        Ok(Transition::between(self, to))
    }

    /// Handing over needs a packed order. Handing over twice is a retry, not a conflict.
    pub fn hand_over(self) -> Result<Transition, Conflict> {
        match self {
            OrderStatus::Packed | OrderStatus::HandedOver => {
                Ok(Transition::between(self, OrderStatus::HandedOver))
            }
            OrderStatus::Cancelled => Err(CANCELLED),
            OrderStatus::Accepted | OrderStatus::InWork => Err(Conflict {
                code: "not_packed",
                message: "the order is not packed yet",
            }),
        }
    }

    /// Anything not yet handed over can be cancelled; cancelling twice changes nothing.
    pub fn cancel(self) -> Result<Transition, Conflict> {
        match self {
            OrderStatus::HandedOver => Err(HANDED_OVER),
            _ => Ok(Transition::between(self, OrderStatus::Cancelled)),
        }
    }

    /// Listed as preparing or ready on the TV board.
    pub fn on_board(self) -> bool {
        matches!(
            self,
            OrderStatus::Accepted | OrderStatus::InWork | OrderStatus::Packed
        )
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::parse(s).ok_or(())
    }
}

/// A status change and the order events it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl Transition {
    fn between(from: OrderStatus, to: OrderStatus) -> Self {
        Transition { from, to }
    }

    pub fn changed(self) -> bool {
        self.from != self.to
    }

    /// `OrderInWork` is due when the order enters work: on its first tap (even when that tap
    /// also packs it) and when a packed order goes back to work.
    pub fn enters_work(self) -> bool {
        matches!(self.from, OrderStatus::Accepted | OrderStatus::Packed)
            && matches!(self.to, OrderStatus::InWork | OrderStatus::Packed)
            && self.from != self.to
    }

    pub fn packs(self) -> bool {
        self.to == OrderStatus::Packed && self.from != OrderStatus::Packed
    }
}

/// What a tap at a station means for a product, from where the product is on its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapOutcome {
    /// The product is at the station: its stage there is complete; `next` is the index of the
    /// next stage, or `None` when this was the last.
    Complete { stage: usize, next: Option<usize> },
    /// The product already left this station in its current pass: the tap is a repeat and
    /// must not move it again.
    AlreadyDone { stage: usize },
    /// The product is not at the station, nor past it.
    NotAtStation,
}

/// Decides a tap at `station` for a product on `route` that is at stage `current` (equal to
/// the route's length once done).
pub fn decide_tap<S: AsRef<str>>(route: &[S], current: usize, station: &str) -> TapOutcome {
    match route.iter().position(|s| s.as_ref() == station) {
        Some(stage) if stage == current => TapOutcome::Complete {
            stage,
            next: (stage + 1 < route.len()).then_some(stage + 1),
        },
        Some(stage) if stage < current => TapOutcome::AlreadyDone { stage },
        _ => TapOutcome::NotAtStation,
    }
}

/// Whether a tap can still be undone.
#[derive(Debug, Clone, Copy)]
pub struct UndoCheck {
    pub tap_stage: usize,
    pub tap_pass: i32,
    pub product_stage: usize,
    pub product_pass: i32,
    pub age: Duration,
    pub window: Duration,
}

/// A tap can be undone within its window, and only while the product still sits where the tap
/// put it: undoing after a later tap or a remake would rewrite history the kitchen acted on.
pub fn check_undo(c: UndoCheck) -> Result<(), Conflict> {
    if c.age > c.window {
        return Err(Conflict {
            code: "undo_window_passed",
            message: "the last tap at this station is too old to undo",
        });
    }
    if c.product_pass != c.tap_pass || c.product_stage != c.tap_stage + 1 {
        return Err(Conflict {
            code: "product_moved_on",
            message: "the product has moved on since the last tap at this station",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    const PIZZA: [&str; 4] = ["dough", "topping", "oven", "packing"];

    #[test]
    fn statuses_round_trip_through_text() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("baking"), None);
    }

    #[test]
    fn a_tap_at_the_current_station_completes_the_stage() {
        assert_eq!(
            decide_tap(&PIZZA, 0, "dough"),
            TapOutcome::Complete {
                stage: 0,
                next: Some(1)
            }
        );
        assert_eq!(
            decide_tap(&PIZZA, 3, "packing"),
            TapOutcome::Complete {
                stage: 3,
                next: None
            }
        );
    }

    #[test]
    fn a_repeated_tap_never_skips_a_stage() {
        // The product moved from dough to topping; a second dough tap is a repeat.
        assert_eq!(
            decide_tap(&PIZZA, 1, "dough"),
            TapOutcome::AlreadyDone { stage: 0 }
        );
        // Also once the product is done.
        assert_eq!(
            decide_tap(&PIZZA, 4, "packing"),
            TapOutcome::AlreadyDone { stage: 3 }
        );
    }

    #[test]
    fn a_tap_ahead_of_the_product_or_off_its_route_is_refused() {
        assert_eq!(decide_tap(&PIZZA, 0, "oven"), TapOutcome::NotAtStation);
        assert_eq!(
            decide_tap(&["packing"], 0, "oven"),
            TapOutcome::NotAtStation
        );
    }

    #[test]
    fn the_first_tap_puts_the_order_in_work() {
        let t = Accepted.after_tap(false).unwrap();
        assert_eq!(t.to, InWork);
        assert!(t.enters_work());
        assert!(!t.packs());
        let t = InWork.after_tap(false).unwrap();
        assert!(!t.changed());
        assert!(!t.enters_work());
    }

    #[test]
    fn a_single_tap_can_both_start_and_pack_an_order() {
        let t = Accepted.after_tap(true).unwrap();
        assert_eq!(t.to, Packed);
        assert!(t.enters_work());
        assert!(t.packs());
    }

    #[test]
    fn closed_orders_cannot_be_tapped() {
        assert_eq!(
            Cancelled.after_tap(false).unwrap_err().code,
            "order_cancelled"
        );
        assert_eq!(
            HandedOver.after_tap(false).unwrap_err().code,
            "order_handed_over"
        );
    }

    #[test]
    fn rework_unpacks_a_packed_order() {
        let t = Packed.after_rework().unwrap();
        assert_eq!(t.to, InWork);
        assert!(t.enters_work());
        assert!(!InWork.after_rework().unwrap().changed());
        assert!(Cancelled.after_rework().is_err());
    }

    #[test]
    fn hand_over_needs_a_packed_order() {
        assert_eq!(InWork.hand_over().unwrap_err().code, "not_packed");
        assert_eq!(Accepted.hand_over().unwrap_err().code, "not_packed");
        assert_eq!(Cancelled.hand_over().unwrap_err().code, "order_cancelled");
        assert!(Packed.hand_over().unwrap().changed());
        assert!(!HandedOver.hand_over().unwrap().changed());
    }

    #[test]
    fn cancel_is_idempotent_but_not_after_hand_over() {
        assert!(InWork.cancel().unwrap().changed());
        assert!(Packed.cancel().unwrap().changed());
        assert!(!Cancelled.cancel().unwrap().changed());
        assert_eq!(HandedOver.cancel().unwrap_err().code, "order_handed_over");
    }

    fn undo(age_s: u64, product_stage: usize, product_pass: i32) -> Result<(), Conflict> {
        check_undo(UndoCheck {
            tap_stage: 1,
            tap_pass: 1,
            product_stage,
            product_pass,
            age: Duration::from_secs(age_s),
            window: Duration::from_secs(30),
        })
    }

    #[test]
    fn undo_within_the_window_while_the_product_waits() {
        assert!(undo(5, 2, 1).is_ok());
        assert!(undo(30, 2, 1).is_ok());
    }

    #[test]
    fn undo_after_the_window_is_refused() {
        assert_eq!(undo(31, 2, 1).unwrap_err().code, "undo_window_passed");
    }

    #[test]
    fn undo_after_the_product_moved_on_is_refused() {
        assert_eq!(undo(5, 3, 1).unwrap_err().code, "product_moved_on");
        assert_eq!(undo(5, 0, 2).unwrap_err().code, "product_moved_on");
    }
}
