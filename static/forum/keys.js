/* Posting keys in the browser: NIP-07 (window.nostr) when a signer extension is present,
 * otherwise a key generated here and kept in localStorage, with export/import (NIP-19 nsec).
 * Signing is BIP-340 Schnorr over the NIP-01 event id (vendor/noble-schnorr.js).
 *
 * Exposes window.ForumKeys = { signer(), npubEncode(hex), ... } for compose.js.
 */
(function () {
  "use strict";

  const STORAGE_KEY = "lnforum.secret_key";
  const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

  // --- NIP-19 bech32 (BIP-173), just enough for npub/nsec ------------------------------
  function polymod(values) {
    const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let chk = 1;
    for (const v of values) {
      const top = chk >>> 25;
      chk = ((chk & 0x1ffffff) << 5) ^ v;
      for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
    }
    return chk;
  }
  function hrpExpand(hrp) {
    const out = [];
    for (const c of hrp) out.push(c.charCodeAt(0) >>> 5);
    out.push(0);
    for (const c of hrp) out.push(c.charCodeAt(0) & 31);
    return out;
  }
  function convertBits(data, from, to, pad) {
    let acc = 0, bits = 0;
    const out = [], maxv = (1 << to) - 1;
    for (const value of data) {
      acc = (acc << from) | value;
      bits += from;
      while (bits >= to) { bits -= to; out.push((acc >>> bits) & maxv); }
    }
    if (pad) { if (bits) out.push((acc << (to - bits)) & maxv); }
    else if (bits >= from || ((acc << (to - bits)) & maxv)) throw new Error("bad padding");
    return out;
  }
  function bech32Encode(hrp, bytes) {
    const data = convertBits(bytes, 8, 5, true);
    const mod = polymod(hrpExpand(hrp).concat(data, [0, 0, 0, 0, 0, 0])) ^ 1;
    const checksum = [];
    for (let i = 0; i < 6; i++) checksum.push((mod >>> (5 * (5 - i))) & 31);
    return hrp + "1" + data.concat(checksum).map((d) => CHARSET[d]).join("");
  }
  function bech32Decode(text) {
    const lower = text.toLowerCase();
    const pos = lower.lastIndexOf("1");
    if (pos < 1 || pos + 7 > lower.length) throw new Error("not bech32");
    const hrp = lower.slice(0, pos);
    const data = [];
    for (const c of lower.slice(pos + 1)) {
      const d = CHARSET.indexOf(c);
      if (d < 0) throw new Error("not bech32");
      data.push(d);
    }
    if (polymod(hrpExpand(hrp).concat(data)) !== 1) throw new Error("bad checksum");
    return { hrp, bytes: Uint8Array.from(convertBits(data.slice(0, -6), 5, 8, false)) };
  }

  const N = () => window.NobleSchnorr;
  const toHex = (bytes) => N().bytesToHex(bytes);
  const fromHex = (hex) => N().hexToBytes(hex);
  const npubEncode = (hex) => bech32Encode("npub", fromHex(hex));
  const nsecEncode = (hex) => bech32Encode("nsec", fromHex(hex));
  const shortNpub = (hex) => { const n = npubEncode(hex); return n.slice(0, 11) + "…" + n.slice(-6); };

  function parseSecret(text) {
    const value = (text || "").trim();
    let hex;
    if (value.startsWith("nsec1")) {
      const { hrp, bytes } = bech32Decode(value);
      if (hrp !== "nsec" || bytes.length !== 32) throw new Error("not an nsec key");
      hex = toHex(bytes);
    } else if (/^[0-9a-fA-F]{64}$/.test(value)) {
      hex = value.toLowerCase();
    } else {
      throw new Error("expected nsec1… or 64 hex characters");
    }
    N().schnorr.getPublicKey(hex); // throws if out of range
    return hex;
  }

  // --- NIP-01 ids and signatures ---------------------------------------------------------
  function eventId(ev) {
    // JSON.stringify escapes exactly what NIP-01 lists for the characters the forum accepts
    // (control characters other than \n \r \t are refused by the forum anyway).
    const serial = JSON.stringify([0, ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content]);
    return toHex(N().sha256(N().utf8ToBytes(serial)));
  }

  function localSecret(create) {
    let hex = null;
    try { hex = window.localStorage.getItem(STORAGE_KEY); } catch (e) { hex = null; }
    if (!hex && create) {
      hex = toHex(N().schnorr.utils.randomPrivateKey());
      window.localStorage.setItem(STORAGE_KEY, hex);
    }
    return hex;
  }

  /** The pubkey of the key this browser already keeps (none made here), or null. */
  function localPubkey() {
    const secret = localSecret(false);
    if (!secret) return null;
    try { return toHex(N().schnorr.getPublicKey(secret)); } catch (e) { return null; }
  }

  const hasNip07 = () => typeof window.nostr === "object" && window.nostr && typeof window.nostr.signEvent === "function";

  /** The signer in use: {source, pubkey, sign(unsigned) -> signed event}. */
  async function signer() {
    if (hasNip07()) {
      const pubkey = await window.nostr.getPublicKey();
      return {
        source: "nip07",
        pubkey,
        sign: async (unsigned) => window.nostr.signEvent({ ...unsigned }),
      };
    }
    const secret = localSecret(true);
    const pubkey = toHex(N().schnorr.getPublicKey(secret));
    return {
      source: "local",
      pubkey,
      sign: async (unsigned) => {
        const ev = { ...unsigned, pubkey };
        const id = eventId(ev);
        const sig = toHex(N().schnorr.sign(id, secret));
        return { id, pubkey, created_at: ev.created_at, kind: ev.kind, tags: ev.tags, content: ev.content, sig };
      },
    };
  }

  // --- the "Your key" dialog ---------------------------------------------------------------
  async function openDialog() {
    const dialog = document.getElementById("key-dialog");
    if (!dialog) return;
    const s = await signer();
    dialog.querySelector(".key-npub").textContent = npubEncode(s.pubkey);
    dialog.querySelector(".key-source").textContent = s.source === "nip07"
      ? "Your Nostr signer extension (NIP-07) holds this key and signs your posts."
      : "A key created by this browser for this site.";
    dialog.querySelector(".local-key-tools").hidden = s.source === "nip07";
    dialog.querySelector(".key-nsec").hidden = true;
    dialog.querySelector(".key-import-result").textContent = "";
    dialog.showModal();
  }

  function wireDialog() {
    const dialog = document.getElementById("key-dialog");
    const button = document.getElementById("key-button");
    if (!dialog || !button) return;
    button.hidden = false;
    button.addEventListener("click", openDialog);
    dialog.querySelector(".key-export").addEventListener("click", () => {
      const out = dialog.querySelector(".key-nsec");
      out.textContent = nsecEncode(localSecret(true));
      out.hidden = false;
    });
    dialog.querySelector(".key-import").addEventListener("click", () => {
      const input = dialog.querySelector(".key-import-input");
      const result = dialog.querySelector(".key-import-result");
      try {
        const hex = parseSecret(input.value);
        if (!window.confirm("Replace the key in this browser? Posts signed with the old key stay theirs; export it first if you still need it.")) return;
        window.localStorage.setItem(STORAGE_KEY, hex);
        input.value = "";
        result.textContent = "Imported.";
        dialog.querySelector(".key-npub").textContent = npubEncode(toHex(N().schnorr.getPublicKey(hex)));
        document.dispatchEvent(new CustomEvent("forum:key-changed"));
      } catch (err) {
        result.textContent = "Not imported: " + err.message;
      }
    });
  }

  window.ForumKeys = { signer, eventId, npubEncode, shortNpub, parseSecret, openDialog, hasNip07, localPubkey };
  document.addEventListener("DOMContentLoaded", wireDialog);
})();
