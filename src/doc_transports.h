/* >>doc_transports: how to plug in an HTTP stack (libcurl, ESP-IDF, a game engine) */
/*
   PLUGGING IN A TRANSPORT
   -----------------------
   Every byte the library sends or receives goes through an ak_transport you hand it (in
   ak_provider_config.transport for models, ak_remote_desc.transport for remote agents).
   The built-in POSIX one (AK_ENABLE_POSIX) is optional; any HTTP client can take its place.
   A transport is three functions and a pointer:

       start(ud, req, sink, &handle)  send req; feed the response into sink (now or later)
       cancel(ud, handle)             forget a started request
       poll(ud, timeout_ms)           optional: advance pending requests
       ud                             your state

   req (method, absolute URL, headers, body, timeout_ms, streaming) and sink stay valid
   until on_done has returned or the request was cancelled: no copies needed.

   The sink rules (break one and the library misreads the response):
   - Order: on_status once, with the final status (skip 1xx interim responses); on_header
     for each response header; on_body any number of times, any split, with the decoded
     body (chunked framing and content encoding removed); then on_done exactly once.
   - on_header's name and value are slices: the library reads only name_len / value_len
     bytes, so no NUL is needed. Headers are advisory (the adapters read retry hints such
     as Retry-After from them); a client that cannot deliver them loses only those.
   - An HTTP error status is not a transport failure: deliver it and its body, then
     on_done(AK_OK); the library reads the provider's error body. on_done's rc is for
     failures to get a whole response: AK_ERR_CONNECT, AK_ERR_TLS, AK_ERR_TIMEOUT,
     AK_ERR_CLOSED, AK_ERR_TRUNCATED, AK_ERR_IO, with msg saying why (may be NULL).
   - If any sink callback returns something other than AK_OK, the library has stopped
     listening: abort the transfer, free the request, call nothing more, not even on_done.
   - A start() that returns an error must not have called the sink.
   - After cancel(handle) the sink is never touched again. Cancelling a finished or unknown
     handle is a no-op, so make handles ids (looked up in your table), not pointers to
     memory that may be freed; the library may cancel from inside a sink callback.
   - When req->streaming is 1, deliver bytes as they arrive; do not buffer the body.
   - Honour req->timeout_ms (the library also enforces it with its clock).
   - Call the sink only on the thread that pumps the library: inside start(), inside
     poll(), or from your event loop on that thread. A client with worker threads queues
     what it receives and feeds the sink from the pumping thread.

   Blocking shape: start() runs the whole exchange, calls every sink function, sets
   *handle = NULL and returns AK_OK; cancel does nothing; poll is NULL. The library's
   calls then block for the length of a request (fine in a CLI, a server thread, or an
   RTOS task). Pumped shape: start() queues the request and returns at once; the sink is
   fed later, from poll() or from the host's loop; nothing blocks, so a game can run a
   turn at 60 fps with ak_chat_poll(chat, 0, ...) once per frame.

   libcurl. examples/curl_transport.c has both shapes: the easy interface (curl_easy_perform
   inside start(); header and write callbacks feed the sink; returning 0 from them aborts
   the transfer) and the multi interface (start() adds the easy handle; poll() runs
   curl_multi_perform, then curl_multi_poll when nothing happened, and reports finished
   transfers from curl_multi_info_read). Since curl forbids removing a handle inside its
   own callbacks, a cancel arriving from a sink callback only marks the request, and poll
   removes it after curl_multi_perform returns.

   ESP-IDF (esp_http_client). Blocking: run the agent in its own FreeRTOS task (16 KB of
   stack or more with TLS), never in an event-loop task or an ISR. In start(): fill an
   esp_http_client_config_t (url = req->url, method, timeout_ms, event_handler, user_data =
   your request record, crt_bundle_attach = esp_crt_bundle_attach for https,
   disable_auto_redirect = true so the library sees the real status), init, add each header
   with esp_http_client_set_header, the body with esp_http_client_set_post_field, then
   esp_http_client_perform. Streaming happens in the event handler: on the first
   HTTP_EVENT_ON_DATA call on_status(esp_http_client_get_status_code(client)), then
   on_body(data, data_len) for every one, so tokens reach the agent while the model writes.
   The status is only known once the head is complete, so HTTP_EVENT_ON_HEADER comes too
   early for on_status: keep the few headers worth having (Retry-After) and pass them after
   on_status, or drop them. After perform returns: call on_status if no data came, then
   on_done (ESP_OK -> AK_OK, ESP_ERR_HTTP_CONNECT -> AK_ERR_CONNECT, a timeout ->
   AK_ERR_TIMEOUT, anything else AK_ERR_IO), esp_http_client_cleanup, *handle = NULL. If a
   sink call fails, ignore the rest of the events and skip on_done.

   A game engine's HTTP module (non-blocking, callbacks on the game thread). start()
   creates the engine request (verb, URL, headers, body), binds its callbacks with your
   request id, fires it and returns AK_OK with the id as the handle; poll stays NULL,
   because the engine pumps its own HTTP in its tick. Its progress callback: on_status
   the first time (with the response code), then on_body with only the bytes not yet
   delivered (engines often hand you everything so far). Its completion callback: whatever
   is left, then on_done (success, or the engine's failure mapped as above). cancel():
   cancel the engine request and drop the id, since engines often still fire completion
   after a cancel; a callback whose id is gone does nothing. An engine that gives the body
   only at completion still works: the chunks arrive at once at the end. Each frame the
   game calls ak_chat_poll(chat, 0, ...) (or ak_agent_pump(agent, 0)) and never waits.
*/
