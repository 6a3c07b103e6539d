"""The synthetic world's vocabulary: topics (= prompt families), genres, words and phrases.

Each topic line is ``id | phrase | keywords | tempting words``:

- ``phrase`` is what the instruction says ("Write a poem about <phrase>.");
- ``keywords``: a response is *on topic* when it uses at least one of them (any inflection
  covered by ``world.text.word_pattern``);
- ``tempting``: words a writer on this topic naturally reaches for; the ``forbid_word`` rule
  picks one of them, so obeying it takes attention instead of being free.

Topics are the unit that train and test splits keep apart (a *family*). Required words, phrases
and audiences are shared across families; they are not topic words (``generate`` also skips any
that collide with the chosen topic).
"""

from __future__ import annotations

from dataclasses import dataclass

_TOPICS = """
lighthouse | an old lighthouse keeper | lighthouse keeper | sea waves light
bakery | a bakery at dawn | bakery bread baker | oven warm flour
first_snow | the first snow of winter | snow winter | cold white frost
robot_gardener | a robot who tends a garden | robot garden | flowers plants metal
rainy_city | a rainy night in the city | rain city | wet streets lights
mountain_climb | climbing a tall mountain | mountain climb climbing | peak summit rocks
quiet_library | a quiet library | library books | reading silence shelves
space_station | life on a space station | space station | stars earth orbit
family_recipe | a grandmother's secret recipe | recipe grandmother | kitchen cooking family
lost_dog | a lost dog finding its way home | dog home | lost bark street
desert_caravan | a caravan crossing the desert | desert caravan | sand camels heat
coral_reef | a coral reef | coral reef | fish ocean colorful
train_journey | a long train journey | train journey | window tracks station
new_school | the first day at a new school | school | nervous teacher friends
stopped_clock | an old clock that stopped | clock | time ticking hands
farmers_market | a busy farmers market | market farmers | vegetables fresh stalls
thunderstorm | a summer thunderstorm | thunderstorm storm thunder | lightning rain dark
beekeeping | keeping bees | bees beekeeper hive | honey buzzing flowers
volcano | a sleeping volcano | volcano | lava fire ash
night_shift_nurse | a nurse on the night shift | nurse shift | hospital patients tired
chess_match | a tense chess match | chess match | board king move
moving_house | moving to a new house | house moving move | boxes new packing
hot_air_balloon | a ride in a hot air balloon | balloon ride | sky float view
old_bookshop | a dusty bookshop | bookshop books | old pages dust
jazz_club | a small jazz club | jazz club | music saxophone night
penguin_colony | a colony of penguins | penguins penguin colony | ice cold antarctica
abandoned_castle | an abandoned castle | castle | ruins walls ancient
river_fishing | fishing by the river | fishing river fish | water catch boat
city_marathon | running a city marathon | marathon running runners | race finish miles
night_sky | stargazing on a clear night | stargazing stars sky | night telescope dark
bicycle_repair | fixing an old bicycle | bicycle bike | wheel chain repair
wedding_day | a wedding day | wedding | love bride dress
tiny_apartment | living in a tiny apartment | apartment | small space room
street_musician | a street musician | musician music | guitar song coins
autumn_forest | a forest in autumn | forest autumn | leaves trees golden
ice_skating | learning to ice skate | skate skating ice | cold fall rink
ghost_town | a ghost town in the west | town ghost | empty dust abandoned
flower_shop | a flower shop | flower flowers shop | roses bloom colors
deep_sea | exploring the deep sea | sea ocean deep | dark creatures water
coffee_shop | a neighborhood coffee shop | coffee shop cafe | cup morning barista
solar_eclipse | a total solar eclipse | eclipse sun | moon dark sky
village_festival | a village harvest festival | festival harvest village | dance food music
first_job | starting a first job | job work | office boss nervous
old_photograph | finding an old photograph | photograph photo | memory past faded
hiking_trail | a hike on a mountain trail | hike hiking trail | path trees boots
pirate_ship | a pirate ship at sea | pirate pirates ship | treasure captain sail
museum_night | a museum at night | museum | paintings statues dark
vegetable_garden | growing a vegetable garden | garden vegetables | soil seeds tomatoes
snowed_in | being snowed in at a cabin | cabin snow | fire cold storm
kite_festival | a kite festival on the beach | kite kites festival | wind sky colors
time_traveler | a time traveler visiting today | time traveler travel | future past machine
dragon | a friendly dragon | dragon | fire wings scales
haunted_house | a haunted house | haunted house ghost | scary night creaking
science_fair | a school science fair | science fair | experiment project prize
rainforest | a walk through a rainforest | rainforest forest | trees rain green
airport_delay | waiting at a delayed airport gate | airport gate flight | waiting plane late
family_reunion | a big family reunion | family reunion | cousins food laughter
wildfire | firefighters facing a wildfire | wildfire firefighters fire | smoke flames heat
sailing | learning to sail a boat | sail sailing boat | wind water waves
lunar_base | building a base on the moon | moon base | space astronauts dust
midnight_train | the last train at midnight | train midnight | station dark late
old_radio | an old radio that still works | radio | music voice static
spring_garden | a garden waking up in spring | spring garden | flowers green bloom
cooking_contest | a cooking contest | cooking contest cook | judges food dish
polar_bear | a polar bear on melting ice | polar bear bears | ice arctic cold
piano_lesson | a child's first piano lesson | piano lesson | keys music teacher
toy_workshop | a toymaker's workshop | toymaker workshop toys | wood paint children
underground_city | a hidden city underground | underground city | tunnels dark secret
storm_at_sea | a ship caught in a storm | ship storm | waves wind sea
desert_island | being stranded on a desert island | island stranded | sand beach ocean
birthday_party | a surprise birthday party | birthday party | cake candles gifts
mars_colony | the first colony on Mars | mars colony | red planet space
woodworking | building a wooden table | table wooden wood | saw tools carpenter
soccer_final | the final minute of a soccer match | soccer match | goal ball team
paper_boats | children racing paper boats | paper boats boat | water stream race
old_map | an old treasure map | map treasure | gold island clues
foggy_harbor | a harbor on a foggy morning | harbor fog foggy | boats water gray
rooftop_garden | a garden on a city rooftop | rooftop garden | plants city sky
cat_nap | a cat's afternoon nap | cat nap | sleep sun warm
learning_language | learning a new language | language learning learn | words speak grammar
night_market | a night market in summer | market night | lanterns food crowd
robot_chef | a robot chef | robot chef | kitchen cooking food
bridge_builder | an engineer building a bridge | bridge engineer | river steel build
homemade_bread | baking bread at home | bread baking | dough oven flour
wolf_pack | a wolf pack in winter | wolf wolves pack | snow howl forest
lemonade_stand | a child's lemonade stand | lemonade stand | summer lemons sell
canyon | standing at the edge of a canyon | canyon | rocks deep view
village_well | the well in an old village | well village | water bucket old
firefly_evening | fireflies on a summer evening | fireflies firefly evening | lights glow summer
submarine | a submarine on a long voyage | submarine voyage | ocean deep crew
circus | a traveling circus | circus | tent clown acrobats
amusement_park | a day at an amusement park | amusement park | rides roller coaster
lost_key | searching for a lost key | key search searching | door lost pocket
postal_worker | a mail carrier's daily route | mail carrier route | letters packages street
meteor_shower | watching a meteor shower | meteor meteors shower | stars night sky
quiet_monastery | a monastery in the mountains | monastery monks | prayer silence bells
vintage_car | restoring a vintage car | car restoring | engine old paint
greenhouse | a greenhouse in winter | greenhouse | plants glass warm
tea_ceremony | a traditional tea ceremony | tea ceremony | cup calm ritual
rescue_dog | a rescue dog in the mountains | rescue dog | snow search mountain
opera_night | a night at the opera | opera | singer stage music
bird_migration | birds migrating south | birds migration migrating | flight south sky
carpenter_apprentice | a carpenter's apprentice | apprentice carpenter | wood tools learn
old_lighthouse_ship | a shipwreck near the coast | shipwreck wreck | sea rocks storm
robot_friend | a robot who wants a friend | robot friend | lonely metal human
ice_cream_truck | an ice cream truck on a hot day | ice cream truck | summer cold sweet
mountain_village | a village high in the mountains | village mountains | snow goats houses
first_flight | a pilot's first solo flight | pilot flight | plane sky clouds
laundromat | a late night at the laundromat | laundromat laundry | machines clothes washing
night_owl | an owl hunting at night | owl | night dark mouse
city_park | a sunny afternoon in a city park | park afternoon | trees benches grass
blacksmith | a village blacksmith | blacksmith forge | iron fire hammer
marathon_baker | baking a cake for a hundred guests | cake guests | oven sugar party
cloud_watching | watching clouds drift by | clouds cloud | sky shapes white
snowman | building a snowman | snowman | snow winter cold
old_diary | reading an old diary | diary | pages secrets past
train_station | a crowded train station | station train | people travel platform
hurricane | preparing for a hurricane | hurricane | wind storm rain
mountain_lake | a calm mountain lake | lake mountain | water reflection calm
taxi_driver | a taxi driver's night | taxi driver | city passengers night
comet | a comet passing the earth | comet | sky tail stars
music_box | an antique music box | music box | tune song old
tree_house | a tree house in the backyard | tree house treehouse | branches kids wood
chocolate_factory | a chocolate factory | chocolate factory | sweet candy workers
dinosaur_museum | dinosaur bones in a museum | dinosaur dinosaurs bones | fossils museum ancient
starry_camp | camping under the stars | camping camp tent | fire stars night
clockmaker | a clockmaker at work | clockmaker clocks | gears time ticking
fishing_village | a small fishing village | fishing village | boats nets sea
glass_blower | a glassblower making a vase | glassblower glass | fire heat shape
ancient_tree | a thousand year old tree | tree | roots branches old
city_subway | riding the subway at rush hour | subway | crowd train people
bakery_cat | a cat that lives in a bakery | cat bakery | bread warm sleep
knight_quest | a young knight on a quest | knight quest | sword dragon castle
astronaut_return | an astronaut returning to earth | astronaut earth | space home landing
winter_market | a winter holiday market | market holiday | lights snow gifts
sandcastle | building a sandcastle | sandcastle castle | sand beach waves
bus_ride | a long bus ride through the countryside | bus ride | road fields window
sunflower_field | a field of sunflowers | sunflowers sunflower field | yellow sun summer
rain_garden | a garden after the rain | garden rain | wet flowers drops
bookbinder | a bookbinder repairing a book | bookbinder book | pages leather glue
railway_bridge | an old railway bridge | railway bridge | train river iron
northern_lights | seeing the northern lights | northern lights aurora | sky green night
mountain_rescue | a rescue on a snowy mountain | rescue mountain | snow helicopter climbers
old_cinema | an old movie theater | cinema theater movie | film screen seats
pottery | making a clay pot | pottery clay pot | wheel hands kiln
windy_day | a very windy day | wind windy | hats trees blowing
library_cat | a cat that lives in a library | cat library | books quiet sleep
tidal_pool | exploring a tidal pool | tidal pool | crabs water shells
"""

_GENRES = (
    "a short poem",
    "a short story",
    "a letter",
    "a diary entry",
    "a product description",
    "a news report",
    "a short speech",
    "a fable",
    "an advertisement",
    "a travel note",
    "a review",
    "a blog post",
    "a lullaby",
    "a postcard message",
)

REQUIRED_WORDS = ["lantern", "compass", "violin", "feather", "marble", "ribbon", "kettle", "umbrella", "anchor", "blanket", "candle", "mirror", "pebble", "saddle", "trumpet", "velvet", "walnut", "zipper", "acorn", "button", "cactus", "chimney", "copper", "crayon", "envelope", "ferry", "garlic", "glove", "hammock", "ink", "jigsaw", "ladder", "lemon", "magnet", "needle", "orchard", "paddle", "parrot", "pepper", "pillow", "puzzle", "quilt", "raft", "rocket", "satchel", "scarf", "shovel", "sparrow", "spoon", "teapot", "thimble", "ticket", "tulip", "tunnel", "turtle", "vase", "wagon", "whistle", "yarn", "zebra", "banjo", "basket", "beacon", "bucket", "canoe", "carrot", "cherry", "cookie", "crown", "diamond", "drum", "falcon", "fountain", "helmet", "igloo", "jacket", "kayak", "lizard", "mitten", "nest", "notebook", "olive", "pencil", "pumpkin", "rope", "sandal", "sock", "statue", "trophy", "violet", "wallet", "windmill", "peacock", "harmonica", "pretzel", "squirrel", "telescope", "suitcase", "broom", "cinnamon", "dragonfly", "hedgehog", "mushroom"]

START_PHRASES = (
    "At dawn",
    "Long ago",
    "Listen closely",
    "Picture this",
    "Once upon a time",
    "Every morning",
    "In the beginning",
    "Today I learned",
    "Nobody expected",
    "It began with",
    "Believe it or not",
    "Here is the truth",
    "Just yesterday",
    "Somewhere far away",
    "The first thing",
    "On a quiet evening",
    "If you ask me",
    "Not many people know",
    "When the bell rang",
    "Good news",
    "Step inside",
    "Close your eyes",
    "Let me tell you",
    "Years from now",
)

END_PHRASES = (
    "and that is all",
    "until we meet again",
    "the end",
    "so it goes",
    "and the story continues",
    "thank you for reading",
    "that is my promise",
    "see you tomorrow",
    "and nothing was the same",
    "remember this",
    "all is well",
    "goodnight for now",
    "that is the secret",
    "let it be",
    "more to come",
    "and so we wait",
    "with love",
    "come and see",
    "never forget it",
    "the journey goes on",
)

AUDIENCES = (
    "Captain Mira",
    "Professor Lin",
    "Aunt Rosa",
    "Coach Daniel",
    "Doctor Amara",
    "Uncle Theo",
    "Officer Grant",
    "Chef Lucia",
    "Mayor Ellis",
    "Sister Agnes",
    "Grandpa Joe",
    "Miss Harper",
    "Mister Okafor",
    "Lady Evelyn",
    "Sir Cedric",
    "Nurse Patel",
    "Pilot Sora",
    "Judge Morales",
    "Farmer Brown",
    "Detective Kane",
    "Auntie Wen",
    "Cousin Noor",
)


@dataclass(frozen=True)
class Topic:
    """One prompt family."""

    id: str
    phrase: str
    keywords: tuple[str, ...]
    tempting: tuple[str, ...]


def _parse_topics(table: str) -> tuple[Topic, ...]:
    out: list[Topic] = []
    seen: set[str] = set()
    for line in table.strip().splitlines():
        tid, phrase, kws, tempt = (p.strip() for p in line.split("|"))
        if tid in seen:
            raise ValueError(f"duplicate topic id {tid!r}")
        seen.add(tid)
        out.append(Topic(tid, phrase, tuple(kws.split()), tuple(tempt.split())))
    return tuple(out)


TOPICS: tuple[Topic, ...] = _parse_topics(_TOPICS)
TOPICS_BY_ID: dict[str, Topic] = {t.id: t for t in TOPICS}
TOPICS_BY_PHRASE: dict[str, Topic] = {t.phrase.casefold(): t for t in TOPICS}
GENRES: tuple[str, ...] = _GENRES

__all__ = [
    "AUDIENCES",
    "END_PHRASES",
    "GENRES",
    "REQUIRED_WORDS",
    "START_PHRASES",
    "TOPICS",
    "TOPICS_BY_ID",
    "TOPICS_BY_PHRASE",
    "Topic",
]
