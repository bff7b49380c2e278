"""The account settings page: the time zone a signed-in user reads times in."""

from chat import selectors


def test_settings_need_a_signed_in_user(client, db):
    response = client.get("/accounts/settings/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/accounts/settings/")


def test_the_default_is_utc_and_a_choice_is_saved_and_used(client, alice):
    client.force_login(alice)

    page = client.get("/accounts/settings/").text
    assert '<option value="UTC" selected>' in page

    response = client.post("/accounts/settings/", {"time_zone": "Europe/Paris", "next": "/chat/general/"})

    assert response.status_code == 302 and response["Location"] == "/chat/general/"
    assert selectors.user_time_zone(user=alice) == "Europe/Paris"
    assert client.session["time_zone"] == "Europe/Paris"  # the room socket reads it from there
    assert "Times are now shown in Europe/Paris." in client.get("/chat/general/").text


def test_an_unknown_zone_is_refused_with_a_clear_error(client, alice):
    client.force_login(alice)

    response = client.post("/accounts/settings/", {"time_zone": "Mars/Olympus_Mons"})

    assert response.status_code == 400
    assert "Choose a time zone from the list." in response.text
    assert selectors.user_time_zone(user=alice) == "UTC"


def test_a_zone_chosen_in_another_browser_reaches_this_sessions_sockets_at_the_next_page(client, alice):
    from django.test import Client

    client.force_login(alice)
    client.get("/chat/general/")
    assert client.session["time_zone"] == "UTC"

    other = Client()
    other.force_login(alice)
    other.post("/accounts/settings/", {"time_zone": "America/New_York"})
    client.get("/chat/general/")

    assert client.session["time_zone"] == "America/New_York"
