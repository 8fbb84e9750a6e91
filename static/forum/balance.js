/* The relay balance on an author's page, shown only to its owner: the key this browser keeps.
 *
 * A Nostr client posts to /relay paying from this balance (docs/relay.md). The figures, the
 * keysend records that fund it and the latest charges come from /api/balance?pubkey=<hex>.
 * NIP-07 extensions are not asked (that would prompt on every author page); the local key is.
 */
(function () {
  "use strict";

  const sats = (msat) => {
    const value = Number(msat) / 1000;
    return value.toLocaleString("en", { maximumFractionDigits: 3 }) + (value === 1 ? " sat" : " sats");
  };

  function row(item) {
    const li = document.createElement("li");
    const what = item.purpose === "credit" ? "funded" : (item.state === "refused" ? "refused, nothing taken" : (item.state === "judging" ? "being judged" : "paid"));
    li.textContent = new Date(item.at).toISOString().slice(0, 16).replace("T", " ") + " UTC · " + what +
      (item.purpose === "credit" || item.state === "done" ? " · " + sats(item.amount_msat) : "");
    if (item.event_id) {
      const link = document.createElement("a");
      link.href = "/e/" + item.event_id + "/";
      link.textContent = " event " + item.event_id.slice(0, 12) + "…";
      li.appendChild(link);
    }
    if (item.refused) {
      const why = document.createElement("div");
      why.className = "muted";
      why.textContent = item.refused;
      li.appendChild(why);
    }
    return li;
  }

  async function show(section, pubkey) {
    let data;
    try {
      const response = await fetch("/api/balance?pubkey=" + pubkey, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    section.querySelector(".balance-amount").textContent = sats(data.balance_msat);
    section.querySelector(".balance-credited").textContent = sats(data.credited_msat);
    section.querySelector(".balance-spent").textContent = sats(data.spent_msat);
    section.querySelector(".balance-node").textContent = (data.fund && data.fund.node_pubkey) || "the forum's node";
    const records = (data.fund && data.fund.keysend_records) || {};
    section.querySelector(".balance-records").textContent =
      Object.keys(records).map((type) => type + "=" + records[type]).join(" ");
    const list = section.querySelector(".balance-recent");
    list.replaceChildren(...(data.recent || []).map(row));
    section.hidden = false;
    section.dataset.balanceMsat = String(data.balance_msat);
  }

  function start() {
    const section = document.getElementById("relay-balance");
    if (!section || !window.ForumKeys) return;
    const mine = window.ForumKeys.localPubkey();
    if (mine && mine === section.dataset.pubkey) show(section, mine);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
