/* A GDtlsClientConnection over a connected UDP GSocket to a DTLS server on 127.0.0.1.
 *
 * Usage: dtls_client PORT CA_FILE trusted|untrusted|pair|pair-without-socket-timeout [1.2|1.3]
 * The last argument is the DTLS version the handshake must reach (default 1.2): 1.2 reads as
 * G_TLS_PROTOCOL_VERSION_DTLS_1_2, 1.3 (which GLib has no value for) as
 * G_TLS_PROTOCOL_VERSION_UNKNOWN with a TLS 1.3 cipher suite; the suite is printed as
 * "ciphersuite NAME".
 * trusted: handshake; a thread waits for a datagram while the main thread sends
 * "hello dtls" (a waiting receive must not hold up the send); print what came as
 * "received TEXT"; then wait in a main loop on the connection's GSource for a second datagram
 * (the callback must be given the DTLS connection, and receive from it), print it as
 * "from-source TEXT"; close with close_notify.
 * pair: as trusted, with dtls_server in its "pair" mode, which sends the reversal of
 * "hello dtls" and then "again"; before closing, a blocked receive is cancelled through its
 * GCancellable (G_IO_ERROR_CANCELLED), a 10 s receive on a socket with a 1 s timeout
 * (g_socket_set_timeout) fails with G_IO_ERROR_TIMED_OUT while a blocking one waits past it
 * until cancelled, the write side is shut down
 * (g_dtls_connection_shutdown) and "bye" is still read (through the connection's GSource, the
 * socket again with a timeout), then the server's close_notify reads as
 * the end (no message received). pair-without-socket-timeout leaves out the socket timeout.
 * untrusted: accept-certificate must see UNKNOWN_CA, refuse it, and the handshake fail with
 * G_TLS_ERROR_BAD_CERTIFICATE. untrusted-elsewhere: the same with "elsewhere.example" as the
 * server identity: accept-certificate sees UNKNOWN_CA and BAD_IDENTITY at once.
 * Prints "ok <check>" per check passed; exits 1 at the first failure. */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
check (const char *name, gboolean ok, const char *detail)
{
  if (!ok)
    {
      fprintf (stderr, "FAILED %s: %s\n", name, detail ? detail : "");
      exit (1);
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

/* Whether OBJ is of the type the selected backend makes: OURS, or with GIO_USE_TLS=gnutls one
 * of glib-networking's GnuTLS types (the tests run these programs against that backend too, to
 * show that they test what GIO promises). */
static gboolean
is_backend_type (gpointer obj, const char *ours)
{
  const char *name = G_OBJECT_TYPE_NAME (obj);
  if (g_strcmp0 (g_getenv ("GIO_USE_TLS"), "gnutls") == 0)
    return strstr (name, "Gnutls") != NULL;
  return strcmp (name, ours) == 0;
}

static int signal_calls;
static GTlsCertificateFlags signal_errors;

static gboolean
on_accept_certificate (GDtlsConnection *conn, GTlsCertificate *cert,
                       GTlsCertificateFlags errors, gpointer data)
{
  signal_calls++;
  signal_errors = errors;
  return FALSE;
}

/* The receiving thread: one datagram within 10 s, as a new string (NULL on failure). */
static gpointer
receive_one (gpointer dtls)
{
  GError *error = NULL;
  char buf[2048] = { 0 };
  GInputVector in_vector = { buf, sizeof buf - 1 };
  GInputMessage in = { NULL, &in_vector, 1, 0, 0, NULL, NULL };
  gint got = g_datagram_based_receive_messages (dtls, &in, 1, 0, 10 * G_USEC_PER_SEC, NULL, &error);
  if (error)
    {
      fprintf (stderr, "receive: %s\n", error->message);
      return NULL;
    }
  return got == 1 ? g_strndup (buf, in.bytes_received) : NULL;
}

/* One datagram within TIMEOUT_US, through CANCELLABLE: the count returned, the bytes in
 * *TEXT (a new string), the error in *ERROR. */
static gint
receive_text (gpointer dtls, gint64 timeout_us, GCancellable *cancellable, gchar **text, GError **error)
{
  char buf[2048] = { 0 };
  GInputVector in_vector = { buf, sizeof buf - 1 };
  GInputMessage in = { NULL, &in_vector, 1, 0, 0, NULL, NULL };
  gint got = g_datagram_based_receive_messages (dtls, &in, 1, 0, timeout_us, cancellable, error);
  *text = got == 1 ? g_strndup (buf, in.bytes_received) : NULL;
  return got;
}

static gpointer
cancel_soon (gpointer cancellable)
{
  g_usleep (300 * 1000);
  g_cancellable_cancel (cancellable);
  return NULL;
}

static gpointer
cancel_later (gpointer cancellable)
{
  g_usleep (1500 * 1000);
  g_cancellable_cancel (cancellable);
  return NULL;
}

static GMainLoop *loop;
static gchar *from_source;

/* The GDatagramBasedSourceFunc: handed the DTLS connection, it receives from it. */
static gboolean
on_readable (GDatagramBased *datagram_based, GIOCondition condition, gpointer dtls)
{
  GError *error = NULL;
  char buf[2048] = { 0 };
  GInputVector in_vector = { buf, sizeof buf - 1 };
  GInputMessage in = { NULL, &in_vector, 1, 0, 0, NULL, NULL };
  check ("source-gives-the-connection", datagram_based == dtls, NULL);
  gint got = g_datagram_based_receive_messages (datagram_based, &in, 1, 0, 0, NULL, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_clear_error (&error);
      return G_SOURCE_CONTINUE; /* a record that was not application data */
    }
  must (error, "receive from source");
  if (got == 1)
    from_source = g_strndup (buf, in.bytes_received);
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static guint give_up_id;

static gboolean
give_up (gpointer unused)
{
  give_up_id = 0;
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (argc != 4 && argc != 5)
    return 2;
  gboolean dtls13 = argc == 5 && strcmp (argv[4], "1.3") == 0;
  guint16 port = (guint16) atoi (argv[1]);
  gboolean pair = g_str_has_prefix (argv[3], "pair");
  gboolean socket_timeout = strcmp (argv[3], "pair") == 0;
  gboolean elsewhere = strcmp (argv[3], "untrusted-elsewhere") == 0;
  gboolean trusted = !elsewhere && strcmp (argv[3], "untrusted") != 0;
  alarm (20); /* never hang */

  /* No socket timeout yet: GLib refuses datagram calls on a socket that has one (the "pair"
   * mode sets one later, to see the connection cope). */
  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  must (error, "socket");
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new (loopback, port);
  g_socket_connect (sock, address, NULL, &error);
  must (error, "connect");

  GSocketConnectable *identity = g_network_address_new (elsewhere ? "elsewhere.example" : "localhost", port);
  GDatagramBased *dtls = g_dtls_client_connection_new (G_DATAGRAM_BASED (sock), identity, &error);
  must (error, "new connection");
  check ("type", is_backend_type (dtls, "FerrosslDtlsClientConnection"),
         G_OBJECT_TYPE_NAME (dtls));
  GTlsDatabase *db = g_tls_file_database_new (argv[2], &error);
  must (error, "database");
  g_dtls_connection_set_database (G_DTLS_CONNECTION (dtls), db);
  g_signal_connect (dtls, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);

  gboolean shaken = g_dtls_connection_handshake (G_DTLS_CONNECTION (dtls), NULL, &error);
  if (!trusted)
    {
      check ("refused", !shaken && g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE),
             error ? error->message : "handshake succeeded");
      GTlsCertificateFlags expected = G_TLS_CERTIFICATE_UNKNOWN_CA;
      if (elsewhere)
        expected |= G_TLS_CERTIFICATE_BAD_IDENTITY;
      gchar *seen = g_strdup_printf ("%d call(s), flags 0x%x", signal_calls, signal_errors);
      check ("signal", signal_calls == 1 && signal_errors == expected, seen);
      g_free (seen);
      return 0;
    }
  must (error, "handshake");
  GDtlsConnection *conn = G_DTLS_CONNECTION (dtls);
  check ("no-signal", signal_calls == 0, NULL);
  GTlsProtocolVersion version = g_dtls_connection_get_protocol_version (conn);
  check ("protocol-version",
         version == (dtls13 ? G_TLS_PROTOCOL_VERSION_UNKNOWN : G_TLS_PROTOCOL_VERSION_DTLS_1_2), NULL);
  /* Borrowed from the connection: it must stay valid after the getter returns. */
  GTlsCertificate *peer = g_dtls_connection_get_peer_certificate (conn);
  gchar *subject = peer ? g_tls_certificate_get_subject_name (peer) : NULL;
  check ("peer-certificate", subject && strstr (subject, "CN=localhost"), subject);
  check ("same-peer-certificate", peer == g_dtls_connection_get_peer_certificate (conn), NULL);
  g_free (subject);
  check ("peer-errors", g_dtls_connection_get_peer_certificate_errors (conn) == 0, NULL);
  gchar *suite = g_dtls_connection_get_ciphersuite_name (conn);
  /* DTLS 1.3 uses TLS 1.3's suites, whose names have no key exchange ("TLS_AES_128_GCM_SHA256"). */
  check ("ciphersuite", suite != NULL && g_str_has_prefix (suite, "TLS_")
                        && (dtls13 ? strstr (suite, "_WITH_") == NULL : TRUE), suite);
  printf ("ciphersuite %s\n", suite);
  g_free (suite);

  GThread *receiver = g_thread_new ("receiver", receive_one, dtls);
  g_usleep (200 * 1000); /* the receiver is waiting by now */
  const char hello[] = "hello dtls\n";
  GOutputVector out_vector = { hello, strlen (hello) };
  GOutputMessage out = { NULL, &out_vector, 1, 0, NULL, 0 };
  gint sent = g_datagram_based_send_messages (dtls, &out, 1, 0, -1, NULL, &error);
  must (error, "send");
  check ("sent", sent == 1 && out.bytes_sent == strlen (hello), NULL);
  gchar *reply = g_thread_join (receiver);
  check ("received", reply != NULL, NULL);
  printf ("received %s", reply);
  fflush (stdout);
  g_free (reply);

  loop = g_main_loop_new (NULL, FALSE);
  GSource *source = g_datagram_based_create_source (dtls, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (on_readable), dtls, NULL);
  g_source_attach (source, NULL);
  give_up_id = g_timeout_add_seconds (10, give_up, NULL);
  g_main_loop_run (loop);
  if (give_up_id)
    g_source_remove (give_up_id);
  check ("from-source", from_source != NULL, NULL);
  printf ("from-source %s", from_source);
  fflush (stdout);
  g_source_destroy (source);
  g_source_unref (source);

  if (pair)
    {
      gchar *text = NULL;
      GCancellable *cancellable = g_cancellable_new ();
      GThread *canceller = g_thread_new ("canceller", cancel_soon, cancellable);
      gint64 start = g_get_monotonic_time ();
      gint got = receive_text (dtls, -1, cancellable, &text, &error);
      gint64 waited_ms = (g_get_monotonic_time () - start) / 1000;
      g_thread_join (canceller);
      check ("cancelled", got < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                          && waited_ms >= 250 && waited_ms < 3000,
             error ? error->message : text);
      g_clear_error (&error);
      g_object_unref (cancellable);

      if (socket_timeout)
        {
          /* The socket's own timeout, shorter than the receive's, ends it. */
          g_socket_set_timeout (sock, 1);
          start = g_get_monotonic_time ();
          got = receive_text (dtls, 10 * G_USEC_PER_SEC, NULL, &text, &error);
          waited_ms = (g_get_monotonic_time () - start) / 1000;
          check ("socket-timeout", got < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
                                   && waited_ms >= 900 && waited_ms < 5000,
                 error ? error->message : text);
          g_clear_error (&error);

          /* A blocking receive (-1) may not time out (GIO treats that as a bug): it waits past
           * the socket's timeout until cancelled. */
          cancellable = g_cancellable_new ();
          canceller = g_thread_new ("canceller", cancel_later, cancellable);
          start = g_get_monotonic_time ();
          got = receive_text (dtls, -1, cancellable, &text, &error);
          waited_ms = (g_get_monotonic_time () - start) / 1000;
          g_thread_join (canceller);
          check ("blocking-past-socket-timeout",
                 got < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                     && waited_ms >= 1400 && waited_ms < 5000,
                 error ? error->message : text);
          g_clear_error (&error);
          g_object_unref (cancellable);
          g_socket_set_timeout (sock, 0);
        }

      g_dtls_connection_shutdown (conn, FALSE, TRUE, NULL, &error);
      must (error, "shutdown");
      check ("shutdown-write", TRUE, NULL);
      if (socket_timeout)
        {
          /* The connection's GSource on a socket with a timeout: the socket's source wakes at
           * its timeout with nothing to read (the receive then would block: no critical, no
           * TIMED_OUT), and again for "bye", which the server sends 1.5 s after our
           * close_notify. */
          g_socket_set_timeout (sock, 1);
          g_clear_pointer (&from_source, g_free);
          source = g_datagram_based_create_source (dtls, G_IO_IN, NULL);
          g_source_set_callback (source, G_SOURCE_FUNC (on_readable), dtls, NULL);
          g_source_attach (source, NULL);
          give_up_id = g_timeout_add_seconds (10, give_up, NULL);
          g_main_loop_run (loop);
          if (give_up_id)
            g_source_remove (give_up_id);
          g_source_destroy (source);
          g_source_unref (source);
          g_socket_set_timeout (sock, 0);
          check ("read-after-shutdown", g_strcmp0 (from_source, "bye\n") == 0, from_source);
          check ("source-with-socket-timeout", TRUE, NULL);
        }
      else
        {
          got = receive_text (dtls, 10 * G_USEC_PER_SEC, NULL, &text, &error);
          must (error, "receive after shutdown");
          check ("read-after-shutdown", got == 1 && g_strcmp0 (text, "bye\n") == 0, text);
          g_free (text);
        }
      got = receive_text (dtls, 10 * G_USEC_PER_SEC, NULL, &text, &error);
      must (error, "receive the end");
      check ("peer-closed", got == 0, text);
      g_free (text);
    }
  g_dtls_connection_close (conn, NULL, &error);
  must (error, "close");
  check ("closed", TRUE, NULL);
  return 0;
}
