//! The event types. Field names are the wire names: they are read by services in other
//! languages, so renaming one is a breaking change (see the crate docs).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// How the customer gets the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderSource {
    Restaurant,
    Delivery,
    Pickup,
}

impl OrderSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSource::Restaurant => "restaurant",
            OrderSource::Delivery => "delivery",
            OrderSource::Pickup => "pickup",
        }
    }
}

/// What kind of product an item is; the category decides its route through the kitchen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductCategory {
    Pizza,
    Side,
    Drink,
    Sauce,
    Dessert,
}

impl ProductCategory {
    pub const ALL: [ProductCategory; 5] = [
        ProductCategory::Pizza,
        ProductCategory::Side,
        ProductCategory::Drink,
        ProductCategory::Sauce,
        ProductCategory::Dessert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProductCategory::Pizza => "pizza",
            ProductCategory::Side => "side",
            ProductCategory::Drink => "drink",
            ProductCategory::Sauce => "sauce",
            ProductCategory::Dessert => "dessert",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One line of an order as the order source sold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderItem {
    /// The menu product id.
    pub product_id: Uuid,
    pub name: String,
    pub category: ProductCategory,
    /// For example `25 cm`, `30 cm`, `0.5 l`; absent when the product has one size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// At least 1; every unit is made and tracked on its own.
    pub quantity: u32,
    /// Changes to the recipe, such as `no onion` or `extra cheese`: free text for the cook,
    /// never read for allergens.
    #[serde(default)]
    pub modifiers: Vec<String>,
    /// The allergens the customer must not get, as codes: the EU's fourteen are `celery`,
    /// `gluten`, `crustaceans`, `eggs`, `fish`, `lupin`, `milk`, `molluscs`, `mustard`, `nuts`,
    /// `peanuts`, `sesame`, `soya`, `sulphites`; another code (lowercase letters and `_`, at most
    /// 32) is shown as it is. Optional: absent means none were declared. Added in 2026-11
    /// (a compatible change: older consumers ignore it, older producers leave it out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allergens: Vec<String>,
}

/// Published by an order source (cashier, website, contact centre) when a customer has paid or
/// confirmed an order. Routing key `<source>.order.placed`, e.g. `cashier.order.placed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    /// The number the customer hears and sees on the TV board.
    pub number: u32,
    /// The name shown on the TV board.
    pub customer_name: String,
    /// The customer asked to be shown by number only.
    #[serde(default)]
    pub show_number_only: bool,
    pub source: OrderSource,
    pub placed_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
    /// A pre-order: when the customer is promised the order. The kitchen holds it and fires it
    /// to its first stations at this time minus the slowest product's route target. At most
    /// 7 days after `placed_at`, and not before it (5 minutes of grace); one already due when
    /// it arrives is fired at once. Optional: absent means "now". Added in 2026-11 (a
    /// compatible change: older consumers ignore it, older producers leave it out).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schemars(with = "DateTime<Utc>")]
    pub promised_at: Option<DateTime<Utc>>,
}

/// An optional field that is there must hold a value: `null` is refused rather than read as
/// "left out", so a producer's bug does not silently turn a pre-order into an order for now.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)?
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("must not be null (leave the field out instead)"))
}

impl Event for OrderPlaced {
    const TYPE: &'static str = "OrderPlaced";
    const KEY: &'static str = "order.placed";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// An order was cancelled. Published by an order source (`<source>.order.cancelled`) when the
/// customer cancels, and by the tracker (`tracker.order.cancelled`) once the kitchen has
/// stopped work on it, whoever cancelled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub cancelled_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who cancelled: an employee id or name, or the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Event for OrderCancelled {
    const TYPE: &'static str = "OrderCancelled";
    const KEY: &'static str = "order.cancelled";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// One unit the kitchen makes and tracks: an item of quantity 3 becomes three products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrackedProduct {
    /// The tracker's id for this unit; taps name it.
    pub id: Uuid,
    /// Index into the order's `items`.
    pub item_index: u32,
    /// The station codes the product goes through, in order.
    pub route: Vec<String>,
}

/// The tracker stored an order and put its products on their first stations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderAcceptedByTracker {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub number: u32,
    pub customer_name: String,
    pub show_number_only: bool,
    pub source: OrderSource,
    pub placed_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    /// The sum of the products' target times; past it the order is late.
    pub target_seconds: u32,
    pub items: Vec<OrderItem>,
    pub products: Vec<TrackedProduct>,
}

impl Event for OrderAcceptedByTracker {
    const TYPE: &'static str = "OrderAcceptedByTracker";
    const KEY: &'static str = "order.accepted";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// The first tap on any of the order's products: the kitchen has started on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderInWork {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub at: DateTime<Utc>,
}

impl Event for OrderInWork {
    const TYPE: &'static str = "OrderInWork";
    const KEY: &'static str = "order.in_work";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// A pizzamaker tapped a product: its stage at `station` is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductStageCompleted {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub station: String,
    /// When the product arrived at the station.
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub target_seconds: u32,
    /// The employee id or name of whoever tapped, when the tablet knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Where the product goes next; absent when this was the last station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_station: Option<String>,
}

impl Event for ProductStageCompleted {
    const TYPE: &'static str = "ProductStageCompleted";
    const KEY: &'static str = "product.stage_completed";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// A tap was undone within its grace period: the product is back at `station`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductStageUndone {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub product_id: Uuid,
    pub station: String,
    pub undone_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Event for ProductStageUndone {
    const TYPE: &'static str = "ProductStageUndone";
    const KEY: &'static str = "product.stage_undone";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// A manager asked for one product to be made again; it is back at its first station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductRemakeRequested {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub product_id: Uuid,
    pub first_station: String,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Event for ProductRemakeRequested {
    const TYPE: &'static str = "ProductRemakeRequested";
    const KEY: &'static str = "product.remake_requested";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// Every product of the order is packed: the TV board shows the customer's name as ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPacked {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub at: DateTime<Utc>,
}

impl Event for OrderPacked {
    const TYPE: &'static str = "OrderPacked";
    const KEY: &'static str = "order.packed";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// The order left the kitchen: given to the customer or to the courier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderHandedOver {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Event for OrderHandedOver {
    const TYPE: &'static str = "OrderHandedOver";
    const KEY: &'static str = "order.handed_over";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// An order source cancelled an order the kitchen had already handed over: the till's cancel
/// was held up (an outage, a slow network) and arrived after the hand-over. The order stays
/// handed over, since the food has left; this tells whoever settles the money (a refund) that
/// the customer cancelled anyway. Published once per order, by the tracker
/// (`tracker.order.cancelled_after_hand_over`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelledAfterHandOver {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    /// When the order was handed over.
    pub handed_over_at: DateTime<Utc>,
    /// When the source says the customer cancelled (its `OrderCancelled.cancelled_at`).
    pub cancelled_at: DateTime<Utc>,
    /// When the tracker recorded the cancel.
    pub recorded_at: DateTime<Utc>,
    /// The source that sent the cancel, from its routing key (`cashier`, `site`, ...).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who cancelled at the source, or the source itself when the cancel named nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Event for OrderCancelledAfterHandOver {
    const TYPE: &'static str = "OrderCancelledAfterHandOver";
    const KEY: &'static str = "order.cancelled_after_hand_over";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// A pre-order's hold ended: its products went to their first stations at `fired_at`, so the
/// kitchen starts on it in time for `promised_at`. Only orders placed with a `promised_at` far
/// enough ahead are held; the others start at once and never see this event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderFired {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub fired_at: DateTime<Utc>,
    pub promised_at: DateTime<Utc>,
    /// The stations the products went to.
    pub stations: Vec<String>,
}

impl Event for OrderFired {
    const TYPE: &'static str = "OrderFired";
    const KEY: &'static str = "order.fired";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// The order ran past the sum of its products' target times. A flag, not a status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRunningLate {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub at: DateTime<Utc>,
    pub target_seconds: u32,
}

impl Event for OrderRunningLate {
    const TYPE: &'static str = "OrderRunningLate";
    const KEY: &'static str = "order.running_late";
    fn subject(&self) -> Uuid {
        self.order_id
    }
}

/// One role a staff member holds: `chain_admin` (in every pizzeria, so without `pizzeria_id`),
/// or `office_manager`, `shift_manager`, `cashier`, `kitchen_staff` in one pizzeria. Role names
/// are strings on the wire so that a new role does not break older consumers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct StaffRoleGrant {
    pub role: String,
    /// Absent for `chain_admin`, which holds in every pizzeria.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pizzeria_id: Option<Uuid>,
}

/// A staff account was created in the auth service. Routing key `auth.user.created`; the
/// subject is the user id. Carries everything a mirror (the legacy `membership` table) needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserCreated {
    pub user_id: Uuid,
    pub login: String,
    pub display_name: String,
    /// The full list of the user's roles.
    pub roles: Vec<StaffRoleGrant>,
    pub active: bool,
    pub at: DateTime<Utc>,
    /// Who created the account; absent when it was created from the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
}

impl Event for UserCreated {
    const TYPE: &'static str = "UserCreated";
    const KEY: &'static str = "user.created";
    fn subject(&self) -> Uuid {
        self.user_id
    }
}

/// A user's roles changed (a grant or a revocation). Carries the full role list after the
/// change, so a consumer replaces what it has instead of applying a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserRolesChanged {
    pub user_id: Uuid,
    pub login: String,
    pub display_name: String,
    pub roles: Vec<StaffRoleGrant>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
}

impl Event for UserRolesChanged {
    const TYPE: &'static str = "UserRolesChanged";
    const KEY: &'static str = "user.roles_changed";
    fn subject(&self) -> Uuid {
        self.user_id
    }
}

/// A user was deactivated: every session of theirs has ended and no new one can start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserDeactivated {
    pub user_id: Uuid,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
}

impl Event for UserDeactivated {
    const TYPE: &'static str = "UserDeactivated";
    const KEY: &'static str = "user.deactivated";
    fn subject(&self) -> Uuid {
        self.user_id
    }
}

/// A staff session ended before its time: logout, revoked by its owner or an admin.
/// The subject is the session's user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionRevoked {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub at: DateTime<Utc>,
    /// `logout`, `revoked_by_user` or `revoked_by_admin`.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
}

impl Event for SessionRevoked {
    const TYPE: &'static str = "SessionRevoked";
    const KEY: &'static str = "session.revoked";
    fn subject(&self) -> Uuid {
        self.user_id
    }
}

/// A pizzeria the chain opened: the tracker owns pizzerias (their kitchens are its business) and
/// announces them, so auth learns which pizzerias roles can be granted in. Routing key
/// `tracker.pizzeria.registered`; the subject is the pizzeria id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PizzeriaRegistered {
    pub pizzeria_id: Uuid,
    pub name: String,
    /// An IANA time zone name, such as `Europe/Moscow`.
    pub time_zone: String,
    pub at: DateTime<Utc>,
}

impl Event for PizzeriaRegistered {
    const TYPE: &'static str = "PizzeriaRegistered";
    const KEY: &'static str = "pizzeria.registered";
    fn subject(&self) -> Uuid {
        self.pizzeria_id
    }
}

/// A pizzeria's name or time zone changed (its full state after the change). Routing key
/// `tracker.pizzeria.changed`; the subject is the pizzeria id. Stations and routes are the
/// kitchen's own and are not announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PizzeriaChanged {
    pub pizzeria_id: Uuid,
    pub name: String,
    pub time_zone: String,
    pub at: DateTime<Utc>,
}

impl Event for PizzeriaChanged {
    const TYPE: &'static str = "PizzeriaChanged";
    const KEY: &'static str = "pizzeria.changed";
    fn subject(&self) -> Uuid {
        self.pizzeria_id
    }
}

/// A kitchen device (a station tablet, a TV board, a screen) was approved by a staff member and
/// picked up its token. Routing key `devices.device.registered`; the subject is the device id.
/// Carries everything a mirror (the legacy `devices` table) needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceRegistered {
    pub device_id: Uuid,
    pub pizzeria_id: Uuid,
    /// `kitchen_station` (a station tablet), `order_board` (the TV order board),
    /// `motivation_board` or `shift_manager_screen`. A string, so a new kind does not break
    /// older consumers.
    pub kind: String,
    pub name: String,
    /// The station code (`oven`) of a station tablet; absent for every other kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// The staff member who approved the device.
    pub approved_by: Uuid,
    pub approved_by_name: String,
    /// When the device asked for its code.
    pub requested_at: DateTime<Utc>,
    pub approved_at: DateTime<Utc>,
    /// When the device picked up its token: the device exists from then on.
    pub at: DateTime<Utc>,
}

impl Event for DeviceRegistered {
    const TYPE: &'static str = "DeviceRegistered";
    const KEY: &'static str = "device.registered";
    fn subject(&self) -> Uuid {
        self.device_id
    }
}

/// A device was renamed or moved to another station. Carries the full state after the change,
/// so a consumer replaces what it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceRenamed {
    pub device_id: Uuid,
    pub pizzeria_id: Uuid,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    pub at: DateTime<Utc>,
    pub actor_id: Uuid,
}

impl Event for DeviceRenamed {
    const TYPE: &'static str = "DeviceRenamed";
    const KEY: &'static str = "device.renamed";
    fn subject(&self) -> Uuid {
        self.device_id
    }
}

/// A device's token was revoked: the device is refused from its next request on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceRevoked {
    pub device_id: Uuid,
    pub pizzeria_id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub actor_id: Uuid,
}

impl Event for DeviceRevoked {
    const TYPE: &'static str = "DeviceRevoked";
    const KEY: &'static str = "device.revoked";
    fn subject(&self) -> Uuid {
        self.device_id
    }
}
