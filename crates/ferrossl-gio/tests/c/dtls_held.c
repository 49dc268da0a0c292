/* A GDtlsClientConnection over a connected UDP GSocket whose server sends several DTLS records
 * in one datagram: the first receive decrypts them all and returns the first; the others are
 * held by the connection, and no datagram will come to announce them. GIO's ways of waiting
 * must see them all the same.
 *
 * Usage: dtls_held PORT CA_FILE 1.2|1.3
 * The server (the Rust test) sends "first", "second" and "third" in one datagram once it has
 * received "ready", and then nothing until it receives "done"; it then sends "last" and its
 * close_notify in one datagram.
 * Checks: after receiving "first", condition_check (G_IO_IN) includes G_IO_IN; a 2 s
 * condition_wait (G_IO_IN) returns TRUE at once; a GSource of g_datagram_based_create_source
 * on a GMainLoop (with a 3 s limit) dispatches for "second" and "third", its callback
 * receiving without waiting; then condition_check no longer includes G_IO_IN. After "last",
 * the GSource dispatches for the close_notify held behind it (the receive gives no message).
 * Prints "ok <check>" per check passed and "FAILED <check>" per check failed; exits 1 if any
 * failed. */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

/* A check whose failure is reported and counted: the ones after it still run. */
static void
expect (const char *name, gboolean ok, const char *detail)
{
  if (!ok)
    {
      fprintf (stderr, "FAILED %s: %s\n", name, detail ? detail : "");
      failures++;
      return;
    }
  printf ("ok %s\n", name);
  fflush (stdout);
}

static void
must (GError *error, const char *what)
{
  if (error)
    {
      fprintf (stderr, "FAILED %s: %s\n", what, error->message);
      exit (1);
    }
}

static void
send_text (GDatagramBased *dtls, const char *text)
{
  GError *error = NULL;
  GOutputVector out_vector = { text, strlen (text) };
  GOutputMessage out = { NULL, &out_vector, 1, 0, NULL, 0 };
  gint sent = g_datagram_based_send_messages (dtls, &out, 1, 0, -1, NULL, &error);
  must (error, "send");
  if (sent != 1)
    {
      fprintf (stderr, "FAILED send: nothing sent\n");
      exit (1);
    }
}

/* One datagram within TIMEOUT_US (0: only what is there): the count returned, the bytes in
 * *TEXT (a new string, NULL without a message), the error in *ERROR. */
static gint
receive_text (GDatagramBased *dtls, gint64 timeout_us, gchar **text, GError **error)
{
  char buf[2048] = { 0 };
  GInputVector in_vector = { buf, sizeof buf - 1 };
  GInputMessage in = { NULL, &in_vector, 1, 0, 0, NULL, NULL };
  gint got = g_datagram_based_receive_messages (dtls, &in, 1, 0, timeout_us, NULL, error);
  *text = got == 1 ? g_strndup (buf, in.bytes_received) : NULL;
  return got;
}

static GMainLoop *loop;
static GString *from_source;  /* what the source's callback received, one line each */
static int dispatches;
static int wanted;            /* messages to receive before quitting (0: the end) */
static gboolean ended;

/* The GDatagramBasedSourceFunc: it receives what is there, without waiting. */
static gboolean
on_readable (GDatagramBased *dtls, GIOCondition condition, gpointer unused)
{
  GError *error = NULL;
  gchar *text = NULL;
  dispatches++;
  gint got = receive_text (dtls, 0, &text, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_clear_error (&error);
      return G_SOURCE_CONTINUE;
    }
  must (error, "receive from source");
  if (got == 1)
    {
      g_string_append_printf (from_source, "%s\n", text);
      g_free (text);
      if (--wanted > 0)
        return G_SOURCE_CONTINUE;
    }
  else
    ended = TRUE;
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gboolean
give_up (gpointer unused)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/* Runs the main loop on a new G_IO_IN source of DTLS until the callback quits it or 3 s
 * pass. */
static void
run_source (GDatagramBased *dtls)
{
  GSource *source = g_datagram_based_create_source (dtls, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (on_readable), NULL, NULL);
  g_source_attach (source, NULL);
  GSource *limit = g_timeout_source_new_seconds (3);
  g_source_set_callback (limit, give_up, NULL, NULL);
  g_source_attach (limit, NULL);
  g_main_loop_run (loop);
  g_source_destroy (limit);
  g_source_unref (limit);
  g_source_destroy (source);
  g_source_unref (source);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (argc != 4)
    return 2;
  gboolean dtls13 = strcmp (argv[3], "1.3") == 0;
  guint16 port = (guint16) atoi (argv[1]);
  alarm (20); /* never hang */

  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  must (error, "socket");
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new (loopback, port);
  g_socket_connect (sock, address, NULL, &error);
  must (error, "connect");
  GSocketConnectable *identity = g_network_address_new ("localhost", port);
  GDatagramBased *dtls = g_dtls_client_connection_new (G_DATAGRAM_BASED (sock), identity, &error);
  must (error, "new connection");
  GTlsDatabase *db = g_tls_file_database_new (argv[2], &error);
  must (error, "database");
  g_dtls_connection_set_database (G_DTLS_CONNECTION (dtls), db);
  g_dtls_connection_handshake (G_DTLS_CONNECTION (dtls), NULL, &error);
  must (error, "handshake");
  GTlsProtocolVersion version = g_dtls_connection_get_protocol_version (G_DTLS_CONNECTION (dtls));
  expect ("protocol-version",
          version == (dtls13 ? G_TLS_PROTOCOL_VERSION_UNKNOWN : G_TLS_PROTOCOL_VERSION_DTLS_1_2), NULL);

  send_text (dtls, "ready");
  gchar *text = NULL;
  gint got = receive_text (dtls, 10 * G_USEC_PER_SEC, &text, &error);
  must (error, "receive");
  expect ("received-first", got == 1 && g_strcmp0 (text, "first") == 0, text);
  g_free (text);

  /* "second" and "third" are held by the connection; the socket has nothing. */
  GIOCondition ready = g_datagram_based_condition_check (dtls, G_IO_IN);
  expect ("check-held", (ready & G_IO_IN) != 0, "no G_IO_IN");

  gint64 start = g_get_monotonic_time ();
  gboolean waited = g_datagram_based_condition_wait (dtls, G_IO_IN, 2 * G_USEC_PER_SEC, NULL, &error);
  gint64 waited_ms = (g_get_monotonic_time () - start) / 1000;
  gchar *detail = g_strdup_printf ("%s after %" G_GINT64_FORMAT " ms",
                                   error ? error->message : waited ? "TRUE" : "FALSE", waited_ms);
  expect ("wait-held", waited && !error && waited_ms < 1000, detail);
  g_free (detail);
  g_clear_error (&error);

  loop = g_main_loop_new (NULL, FALSE);
  from_source = g_string_new (NULL);
  wanted = 2;
  run_source (dtls);
  printf ("from-source %d dispatch(es):\n%s", dispatches, from_source->str);
  fflush (stdout);
  expect ("source-held", g_strcmp0 (from_source->str, "second\nthird\n") == 0, from_source->str);

  ready = g_datagram_based_condition_check (dtls, G_IO_IN);
  expect ("nothing-held", (ready & G_IO_IN) == 0, "G_IO_IN with nothing to read");
  if (failures)
    return 1;

  /* "last", and the close_notify behind it in the same datagram. */
  send_text (dtls, "done");
  got = receive_text (dtls, 10 * G_USEC_PER_SEC, &text, &error);
  must (error, "receive last");
  expect ("received-last", got == 1 && g_strcmp0 (text, "last") == 0, text);
  g_free (text);
  g_string_truncate (from_source, 0);
  wanted = 1;
  run_source (dtls);
  expect ("end-held", ended && from_source->len == 0, from_source->str);

  g_dtls_connection_close (G_DTLS_CONNECTION (dtls), NULL, &error);
  must (error, "close");
  return failures ? 1 : 0;
}
