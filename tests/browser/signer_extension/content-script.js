/* Isolated world, as nos2x's content script: put window.nostr into the page by adding a
 * <script src="chrome-extension://<id>/nostr-provider.js">, a file from the extension's own
 * origin listed in web_accessible_resources. */
const script = document.createElement("script");
script.src = chrome.runtime.getURL("nostr-provider.js");
(document.head || document.documentElement).appendChild(script);
