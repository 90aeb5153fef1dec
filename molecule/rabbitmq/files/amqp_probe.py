"""AMQP probe for the rabbitmq scenario. Credentials come from AMQP_USER and AMQP_PASSWORD.

python3 amqp_probe.py [--tls CA|system] HOST:PORT VHOST ACTION ...
  login | publish EXCHANGE KEY BODY [COPIES] | get QUEUE | count QUEUE | drain QUEUE
Prints OK, the body, EMPTY, the number of ready (count) or taken (drain) messages, or the
broker's refusal; exits 0 unless the probe itself broke.
"""

import argparse
import os
import ssl
import sys

import amqp


def connect(args):
    options = {}
    if args.tls:
        # py-amqp 5.1 takes wrap options, and verifies the certificate and host name with these.
        options["ssl"] = {
            # "system": the host's default trust store only (which does not hold the test CA).
            "ca_certs": None if args.tls == "system" else args.tls,
            "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": args.address.rsplit(":", 1)[0],
        }
        if args.cert:
            options["ssl"].update(certfile=args.cert, keyfile=args.key)
    return amqp.Connection(
        host=args.address,
        virtual_host=args.vhost,
        userid=os.environ["AMQP_USER"],
        password=os.environ["AMQP_PASSWORD"],
        connect_timeout=10,
        # basic_publish then waits for the broker's confirm (a quorum queue confirms once a
        # majority of its replicas has the message).
        confirm_publish=True,
        **options,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", metavar="CA")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("address")
    parser.add_argument("vhost")
    parser.add_argument("action", choices=["login", "publish", "get", "count", "drain"])
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    try:
        with connect(args) as conn:
            channel = conn.channel()
            if args.action == "publish":
                exchange, key, body, *copies = args.rest
                for _copy in range(int(copies[0]) if copies else 1):
                    message = amqp.Message(body, delivery_mode=2)
                    channel.basic_publish(message, exchange=exchange, routing_key=key)
            elif args.action == "count":
                print(channel.queue_declare(args.rest[0], passive=True).message_count)
                return 0
            elif args.action == "drain":
                taken = 0
                while channel.basic_get(args.rest[0], no_ack=True) is not None:
                    taken += 1
                print(taken)
                return 0
            elif args.action == "get":
                message = channel.basic_get(args.rest[0], no_ack=True)
                print(message.body if message else "EMPTY")
                return 0
            print("OK")
    except (amqp.exceptions.AMQPError, ConnectionError, ssl.SSLError, OSError) as err:
        print(f"REFUSED {type(err).__name__}: {err}")
    return 0


sys.exit(main())
