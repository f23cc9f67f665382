"""Orange Money provider plugin for the mobile-money gateway.

Orange Money is not one API: which one a merchant gets depends on the country. This
package speaks three of them, chosen per country by the `MMO_ORANGE_FAMILIES` setting:

- `webpay`: Orange Developer "Orange Money Web Payment" (api.orange.com), a redirect flow;
- `cameroon`: Orange Cameroon "omcoreapis" merchant payment (USSD push) and cash-in;
- `sonatel`: the Senegal "Orange Money API" (payments confirmed on #144#, cash-in, balance).

`plugin.py` holds the hooks, `client.py` the HTTP calls and the one translation of Orange's
answers into the core's errors, `fields.py` the Orange fields derived from a payment,
`wire.py` Orange's payloads, `simulator/` one simulator serving every family and account.
"""
